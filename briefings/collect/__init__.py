"""Collection: entries from RSS/Atom feeds (feeds.py) and from the corpus folder (corpus.py)."""
