"""WorkChains of aiida-ccdcgan."""
