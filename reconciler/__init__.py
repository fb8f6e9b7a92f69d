"""reconciler: a git repository as a model registry, GitOps-style."""

__version__ = "0.2.0"
