"""Names and small helpers shared by the AiiDA layer."""
