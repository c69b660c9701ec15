"""Media downloads from the platforms' CDNs (``downloader``), for the asset flows."""
