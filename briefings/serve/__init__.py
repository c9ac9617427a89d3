"""`briefings serve`: the archive, its search and one-click unsubscribe, on the web.

The web application is in ``app`` (Starlette, imported only by `briefings serve`);
``tokens`` signs and reads the unsubscribe links, and is all a run that sends needs.
"""
