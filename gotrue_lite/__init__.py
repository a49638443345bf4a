"""gotrue-lite: a Python re-implementation of the GoTrue / Supabase Auth server."""

__version__ = "0.1.0"
