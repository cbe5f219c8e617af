"""The HTML report (``webex-exporter report``): ``report.py`` gathers the data and writes the file,
``page.py`` lays it out, ``charts.py`` draws the inline SVG charts."""
