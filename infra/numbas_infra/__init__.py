"""The Numbas LTI Provider's infrastructure: Pulumi components (Hetzner Cloud, Docker over SSH)
and the plain-Python description of the containers they run (spec.py), which the local
full-stack tests read too."""
