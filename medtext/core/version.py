"""medtext's version, recorded in what it writes (a folder's manifest)."""

VERSION = "0.1.0"
