"""The classroom: students join with a class code, the teacher signs in and sees every job,
and every request is checked before any route.

Where to look:
- tokens.py: the class keys, student tokens and teacher sessions, reading a caller's token;
  roster.py: who joined and which tokens are revoked (SQLite).
- origins.py: the Host and Origin allow-lists.
- checks.py and limits.py: one small ASGI middleware per check, in the order wiring.install
  adds them; refusals.py: the sentences, close codes and counts they answer with.
- sessions.py: join, leave, teacher login and logout, "who am I", the /join and /teacher
  pages; teacher.py: the teacher's lists of jobs and students, removing a student.
- sweeper.py: the start-up banner and the idle-job sweep, run by main.py's lifespan.
- wiring.py: how it plugs into the app: its routers and `install` (the checks, in order).

A student's token is the token their jobs are created under, so `deps.authorize_job` keeps
students apart; the teacher's session passes `deps.is_teacher`.
"""
