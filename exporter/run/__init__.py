"""One run: sites x datasets x windows probed, packed, listed and committed in order
(``pipeline``), planned before any request (``planning``: windows, option checks, packing),
the REST source's runs (``rest_export``) and the terminal progress.  Imports
``webex`` and ``store`` and joins them; they never see each other."""
