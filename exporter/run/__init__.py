"""One run: sites x datasets x windows planned, probed, packed, listed and committed in order
(``pipeline``), the REST source's runs (``rest_export``) and the terminal progress.  Imports
``webex`` and ``store`` and joins them; they never see each other."""
