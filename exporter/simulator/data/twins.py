"""Exact twins and near twins of attendee and Access Anywhere rows (``twin_fraction``,
``near_twin_fraction``), added after a day's rows from a random stream of their own."""

from __future__ import annotations

import random

from ..config import SimulatorConfig
from .people import ATTENDEE_DATASETS, AttendeeSlots, RowTemplates, whole_minutes
from .records import Layout, Record

__all__ = ["Twins", "TWIN_DATASETS"]

#: Datasets that get exact and near twins (``twin_fraction``, ``near_twin_fraction``).
TWIN_DATASETS = (*ATTENDEE_DATASETS, "access_anywhere")


class Twins:
    """Adds twins to one world day's rows (the attendee row templates are the world's)."""

    def __init__(self, config: SimulatorConfig, layouts: dict[str, Layout], slots: dict[str, AttendeeSlots],
                 bases: dict[str, RowTemplates]) -> None:
        self.config = config
        self.layouts = layouts
        self._slots = slots
        self._bases = bases

    def add(self, rng: random.Random, out: dict[str, list[Record]]) -> None:
        """Exact twins and near twins of attendee and Access Anywhere rows, as real sites have them.

        An exact twin equals its row in every field: a copy of an ordinary row or, for
        ``call_in_twin_share`` of them, two ``Call-in User_<n>`` rows (no e-mail, the same join
        second; ``<n>`` restarts per meeting, so the two share the label).  A near twin shares the
        natural key but not the device: other IP address and client, a later leave time.
        """
        c = self.config
        twin, near = c.twin_fraction, c.twin_fraction + c.near_twin_fraction
        for dataset in TWIN_DATASETS:
            rows = out[dataset]
            added: list[Record] = []
            labels: dict[int, int] = {}  # conf_id -> the last Call-in User_<n> of that meeting
            for rec in rows:
                roll = rng.random()
                if roll < twin:
                    if dataset != "access_anywhere" and rng.random() < c.call_in_twin_share:
                        pair = self._call_in(rng, dataset, rec, labels)
                        added += (pair, pair)
                    else:
                        added.append(rec)
                elif roll < near:
                    added.append(self._near_twin(rng, dataset, rec))
            rows.extend(added)

    def _call_in(self, rng: random.Random, dataset: str, rec: Record, labels: dict[int, int]) -> Record:
        """A call-in user of ``rec``'s session joining when ``rec`` joined, labelled per meeting."""
        sl = self._slots[dataset]
        dial = self._bases[dataset][1]
        row = dial[int(rng.random() * len(dial))].copy()
        for i in (sl.key, sl.conf_name, sl.conf_id, sl.uuid, sl.registered, sl.invited, sl.lead_source,
                  sl.lead_score, sl.qa, sl.visible, sl.preliminary, sl.flags):
            if i is not None:
                row[i] = rec[i]
        conf_id = rec[sl.conf_id]
        labels[conf_id] = n = labels.get(conf_id, 0) + 1
        row[sl.name] = f"Call-in User_{n}"
        row[sl.email] = "" if rng.random() < 0.5 else None
        join, leave = rec[sl.join], rec[sl.leave]
        row[sl.join], row[sl.leave], row[sl.duration] = join, leave, whole_minutes(leave - join)
        row[sl.ptype] = "ATTENDEE"
        if sl.voip is not None:
            row[sl.voip] = 0
        return tuple(row)

    def _near_twin(self, rng: random.Random, dataset: str, rec: Record) -> Record:
        """``rec``'s person (same natural key) on a second device: other IP and client, stays longer."""
        lay = self.layouts[dataset]
        ix = lay.index
        row = list(rec)
        later = 60 + int(rng.random() * 1800)
        if dataset == "access_anywhere":
            row[ix["client_ip"]] = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            start, end = rec[ix["start_time"]], rec[ix["end_time"]] + later
            row[ix["end_time"]], row[ix["duration"]] = end, whole_minutes(end - start)
            return tuple(row)
        sl = self._slots[dataset]
        online = self._bases[dataset][0]
        device = online[int(rng.random() * len(online))]
        row[ix["ip_address"]], row[ix["client_agent"]] = device[ix["ip_address"]], device[ix["client_agent"]]
        join, leave = rec[sl.join], rec[sl.leave] + later
        row[sl.leave], row[sl.duration] = leave, whole_minutes(leave - join)
        if sl.voip is not None:
            row[sl.voip] = row[sl.duration]
        return tuple(row)
