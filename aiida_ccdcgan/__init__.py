"""aiida-ccdcgan: generative inverse design of crystal structures (CCDCGAN) as an AiiDA plugin.

Importing this package is light: it never imports TensorFlow or torch, which only the training,
sampling and relaxation scripts load, inside their own processes.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aiida-ccdcgan")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
