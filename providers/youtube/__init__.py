"""YouTube sources, one module each (a client and the pure parsers of its answers): the Data API v3
(``youtube_data``, whose shapes youtube-v31 and youtube-v311 on RapidAPI share), YouTube Analytics, youtube138,
the shorts probe on youtube.com (``youtube_web``), and RAY, the model server that categorises YouTube posts."""
