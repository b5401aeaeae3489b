"""nipype preprocessing workflows (anatomical and functional) and their interfaces."""

import os

# nipype asks a web service for newer versions at import; clusters and CI have no network.
os.environ.setdefault("NIPYPE_NO_ET", "1")
