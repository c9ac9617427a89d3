"""briefings: turns the week's writing on cybersecurity norms into a themed briefing."""

__version__ = "0.1.0"
__url__ = "https://github.com/briefings/briefings"
USER_AGENT = f"briefings/{__version__} (+{__url__})"
