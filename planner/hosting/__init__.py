"""Serving the app to several people: users, their workspaces, and the shared job queue.

Below the app's pages and free of Streamlit: the pages call it (through
``app_pages/_account.py``), it never imports them.

- :mod:`planner.hosting.users`: the sign-in modes and a user's safe identity;
- :mod:`planner.hosting.workspaces`: private workspaces, team folders, upload clean-up;
- :mod:`planner.hosting.audit`: one log line per sign-in, save, open, delete and export;
- :mod:`planner.hosting.queue`: the server-wide job queue (``PLANNER_MAX_JOBS``);
- :mod:`planner.hosting.jobs`: a user's long work (progress, Stop, answer or error);
- :mod:`planner.hosting.cache`: the process-wide cache every session shares;
- :mod:`planner.hosting.serve`: ``planner serve``, refusing to serve the app open by mistake.
"""
