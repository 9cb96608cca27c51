"""The package's errors for input a user can correct: each message names the problem and what to do.

The command line prints a :class:`UserInputError` (or any subclass) as one line and exits with 1; the AiiDA layer
refuses such input before it stores anything.
"""


class UserInputError(ValueError):
    """Input the user can correct: a command's option, a node, a figure, a setting."""


class DatasetError(UserInputError):
    """A dataset, file or group that cannot be read, imported, checked, split or exported."""


class RepresentationError(UserInputError):
    """Representation settings that cannot work, or a structure or voxel grid the representation cannot hold."""
