"""工作台: the web console over the library (``automation web``).

- :mod:`~automation.web.app`: the Flask application, its per-thread ledger connections and guards;
- :mod:`~automation.web.pages`: the routes — each parses a request, calls one library function
  (:mod:`automation.progress.views`, :mod:`automation.agenda`, :mod:`automation.actions`, the two
  previews), renders a Jinja2 template;
- :mod:`~automation.web.security`: accounts in use, CSRF, security headers;
- :mod:`~automation.web.jobs`: long actions in the background, one of a kind at a time;
- :mod:`~automation.web.charts`: server-side SVG charts;
- :mod:`~automation.web.server`: serving with waitress (Windows and Linux alike) and the rules for
  which address it may listen on.

May import every layer (it is the top, beside the CLI); holds no logic of its own.
"""
