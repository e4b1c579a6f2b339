"""The web cockpit (大屏): server.py serves static/ and the panels' data."""
