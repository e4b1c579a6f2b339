"""Open311 GeoReport v2 intake: citizens' requests become AppReport events on `app.reports`."""
