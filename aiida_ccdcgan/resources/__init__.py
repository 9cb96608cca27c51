"""Data files shipped with aiida-ccdcgan: the Bi–Se training database (``bise_sevennet.extxyz.gz`` and its build
record ``bise_sevennet.json``, made by ``scripts/build_bise_database.py``; read them with
:mod:`aiida_ccdcgan.dataset.shipped`) and pretrained autoencoders (``pretrained/<name>/``, made by
``scripts/ship_pretrained.py``; loaded by :mod:`aiida_ccdcgan.models.pretrained`)."""
