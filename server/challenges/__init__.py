"""Challenges: a teacher's exercise with a goal (issue 14).

The teacher makes a challenge from a setup (a job spec), says which controls students may
change (the rest locked or hidden) and the goal (a metric, at most N parameters, within M
epochs); students make runs on it; each run is checked against the goal as it trains; the
teacher reads a table of each student's best run, as JSON or CSV.

Where to look:
- rules.py: controls and spec paths, what a student changed, metric names, meeting a goal.
- checks.py: checking a new challenge, and a new job on one (locked fields, max_params).
- storage.py: the SQLite file (`challenges.sqlite3`); progress.py: the board, which follows
  the engine's metric events (main.py wraps the hub's callback with `progress.listener`).
- results.py: the results rows and CSV; routes.py: the /api/challenges routes (wired in
  server/api/classroom/wiring.py) and the two calls of POST /api/jobs.
"""
