"""The CCDCGAN networks and their training in Keras 3 (imports Keras; only training and sampling scripts use it)."""
