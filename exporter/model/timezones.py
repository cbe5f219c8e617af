"""The Webex timeZoneID table (IDs 0-61) and its mapping to IANA zones.

Webex names a *region* by ID; the offset in force depends on the date (daylight saving), so
local times are converted with the IANA zone, never with the fixed label offset.  The IANA
column is our best mapping (see ../shared/webex-xml-api.md section 7), not Cisco's; a site can
override any entry in ``config.toml`` (``[timezones] overrides``).

ID 20 ("Greenwich (Casablanca)") is mapped to DST-free GMT: the label carries no daylight rule
and it is the zone the exporter asks for by default, so every returned time is UTC.  Whether the
real service applies DST to ID 20 is UNCONFIRMED, hence overridable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["WebexTimeZone", "TIME_ZONES", "by_id", "zoneinfo_for", "DEFAULT_REQUEST_TIME_ZONE_ID"]

#: The zone the exporter sends as ``timeZoneID`` unless a site says otherwise.
DEFAULT_REQUEST_TIME_ZONE_ID = 20


@dataclass(frozen=True, slots=True)
class WebexTimeZone:
    """One row of the Webex table: ID, standard offset in minutes, wire label, IANA zone."""

    id: int
    gmt_offset_minutes: int
    region: str
    iana: str

    @property
    def label(self) -> str:
        """The label as Webex writes it, e.g. ``GMT-08:00, Pacific (San Jose)``."""
        sign = "-" if self.gmt_offset_minutes < 0 else "+"
        hours, minutes = divmod(abs(self.gmt_offset_minutes), 60)
        return f"GMT{sign}{hours:02d}:{minutes:02d}, {self.region}"


def _tz(id_: int, offset: str, region: str, iana: str) -> WebexTimeZone:
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = offset[1:].split(":")
    return WebexTimeZone(id_, sign * (int(hours) * 60 + int(minutes)), region, iana)


TIME_ZONES: tuple[WebexTimeZone, ...] = (
    _tz(0, "-12:00", "Dateline (Eniwetok)", "Etc/GMT+12"),
    _tz(1, "-11:00", "Samoa (Samoa)", "Pacific/Pago_Pago"),
    _tz(2, "-10:00", "Hawaii (Honolulu)", "Pacific/Honolulu"),
    _tz(3, "-09:00", "Alaska (Anchorage)", "America/Anchorage"),
    _tz(4, "-08:00", "Pacific (San Jose)", "America/Los_Angeles"),
    _tz(5, "-07:00", "Mountain (Arizona)", "America/Phoenix"),
    _tz(6, "-07:00", "Mountain (Denver)", "America/Denver"),
    _tz(7, "-06:00", "Central (Chicago)", "America/Chicago"),
    _tz(8, "-06:00", "Mexico (Mexico City, Tegucigalpa)", "America/Mexico_City"),
    _tz(9, "-06:00", "Central (Regina)", "America/Regina"),
    _tz(10, "-05:00", "S. America Pacific (Bogota)", "America/Bogota"),
    _tz(11, "-05:00", "Eastern (New York)", "America/New_York"),
    _tz(12, "-05:00", "Eastern (Indiana)", "America/Indiana/Indianapolis"),
    _tz(13, "-04:00", "Atlantic (Halifax)", "America/Halifax"),
    _tz(14, "-04:00", "S. America Western (Caracas)", "America/Caracas"),
    _tz(15, "-03:30", "Newfoundland (Newfoundland)", "America/St_Johns"),
    _tz(16, "-03:00", "S. America Eastern (Brasilia)", "America/Sao_Paulo"),
    _tz(17, "-03:00", "S. America Eastern (Buenos Aires)", "America/Argentina/Buenos_Aires"),
    _tz(18, "-02:00", "Mid-Atlantic (Mid-Atlantic)", "America/Noronha"),
    _tz(19, "-01:00", "Azores (Azores)", "Atlantic/Azores"),
    _tz(20, "+00:00", "Greenwich (Casablanca)", "Etc/GMT"),
    _tz(21, "+00:00", "GMT (London)", "Europe/London"),
    _tz(22, "+01:00", "Europe (Amsterdam)", "Europe/Amsterdam"),
    _tz(23, "+01:00", "Europe (Paris)", "Europe/Paris"),
    _tz(24, "+01:00", "Europe (Prague)", "Europe/Prague"),
    _tz(25, "+01:00", "Europe (Berlin)", "Europe/Berlin"),
    _tz(26, "+02:00", "Greece (Athens)", "Europe/Athens"),
    _tz(27, "+02:00", "Eastern Europe (Bucharest)", "Europe/Bucharest"),
    _tz(28, "+02:00", "Egypt (Cairo)", "Africa/Cairo"),
    _tz(29, "+02:00", "South Africa (Pretoria)", "Africa/Johannesburg"),
    _tz(30, "+02:00", "Northern Europe (Helsinki)", "Europe/Helsinki"),
    _tz(31, "+02:00", "Israel (Tel Aviv)", "Asia/Jerusalem"),
    _tz(32, "+03:00", "Saudi Arabia (Baghdad)", "Asia/Baghdad"),
    _tz(33, "+03:00", "Russian (Moscow)", "Europe/Moscow"),
    _tz(34, "+03:00", "Nairobi (Nairobi)", "Africa/Nairobi"),
    _tz(35, "+03:30", "Iran (Tehran)", "Asia/Tehran"),
    _tz(36, "+04:00", "Arabian (Abu Dhabi, Muscat)", "Asia/Dubai"),
    _tz(37, "+04:00", "Baku (Baku)", "Asia/Baku"),
    _tz(38, "+04:30", "Afghanistan (Kabul)", "Asia/Kabul"),
    _tz(39, "+05:00", "West Asia (Ekaterinburg)", "Asia/Yekaterinburg"),
    _tz(40, "+05:00", "West Asia (Islamabad)", "Asia/Karachi"),
    _tz(41, "+05:30", "India (Bombay)", "Asia/Kolkata"),
    _tz(42, "+06:00", "Columbo (Columbo)", "Asia/Colombo"),
    _tz(43, "+06:00", "Central Asia (Almaty)", "Asia/Almaty"),
    _tz(44, "+07:00", "Bangkok (Bangkok)", "Asia/Bangkok"),
    _tz(45, "+08:00", "China (Beijing)", "Asia/Shanghai"),
    _tz(46, "+08:00", "Australia Western (Perth)", "Australia/Perth"),
    _tz(47, "+08:00", "Singapore (Singapore)", "Asia/Singapore"),
    _tz(48, "+08:00", "Taipei (Hong Kong)", "Asia/Taipei"),
    _tz(49, "+09:00", "Tokyo (Tokyo)", "Asia/Tokyo"),
    _tz(50, "+09:00", "Korea (Seoul)", "Asia/Seoul"),
    _tz(51, "+09:00", "Yakutsk (Yakutsk)", "Asia/Yakutsk"),
    _tz(52, "+09:30", "Australia Central (Adelaide)", "Australia/Adelaide"),
    _tz(53, "+09:30", "Australia Central (Darwin)", "Australia/Darwin"),
    _tz(54, "+10:00", "Australia Eastern (Brisbane)", "Australia/Brisbane"),
    _tz(55, "+10:00", "Australia Eastern (Sydney)", "Australia/Sydney"),
    _tz(56, "+10:00", "West Pacific (Guam)", "Pacific/Guam"),
    _tz(57, "+10:00", "Tasmania (Hobart)", "Australia/Hobart"),
    _tz(58, "+10:00", "Vladivostok (Vladivostok)", "Asia/Vladivostok"),
    _tz(59, "+11:00", "Central Pacific (Solomon Is)", "Pacific/Guadalcanal"),
    _tz(60, "+12:00", "New Zealand (Wellington)", "Pacific/Auckland"),
    _tz(61, "+12:00", "Fiji (Fiji)", "Pacific/Fiji"),
)

_BY_ID = {tz.id: tz for tz in TIME_ZONES}


def by_id(time_zone_id: int) -> WebexTimeZone:
    """The table row for a Webex timeZoneID; ``KeyError`` names unknown IDs."""
    try:
        return _BY_ID[time_zone_id]
    except KeyError:
        raise KeyError(f"unknown Webex timeZoneID {time_zone_id} (known: 0-61)") from None


@lru_cache(maxsize=None)
def zoneinfo_for(time_zone_id: int, overrides: tuple[tuple[int, str], ...] = ()) -> ZoneInfo:
    """The IANA zone for a Webex ID, after applying ``overrides`` ((id, iana) pairs)."""
    name = dict(overrides).get(time_zone_id) or by_id(time_zone_id).iana
    return ZoneInfo(name)
