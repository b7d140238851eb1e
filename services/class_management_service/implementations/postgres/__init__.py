"""The PostgreSQL adapter: ``repository.py`` implements ClassRepositoryProtocol on
``sessions.py`` (one session per operation, errors translated and counted), the statements
of ``classes.py``, ``students.py``, ``essays.py`` and ``outbox.py`` (the outbox row for both
the changes that write it and the relay that sends it), and ``tables.py`` (the tables, the
columns each record is selected by, and the records built from them).
"""
