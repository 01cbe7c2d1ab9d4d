"""Serving the app to several people: users, their workspaces, and the shared job queue.

Below the app's pages and free of Streamlit: the pages call it, it never imports them.

- :mod:`planner.hosting.cache`: the process-wide cache every session shares;
- :mod:`planner.hosting.jobs`: a user's long work (progress, Stop, answer or error).
"""
