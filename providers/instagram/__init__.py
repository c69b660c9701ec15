"""Instagram sources, one module each (a client and the pure parsers of its answers): ArrayBobo, JoTucker,
BestSolutions, NeoTank and IGApi on RapidAPI, RocketAPI, Lama, the Graph API; and ``instagram_shapes``, the
readers of Instagram's own JSON that the pass-through sources share."""
