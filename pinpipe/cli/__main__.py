"""``python -m pinpipe.cli``: the command line, as the ``pinpipe`` script runs it."""

from pinpipe.cli import app

app()
