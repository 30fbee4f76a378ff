"""The leaderboard drawn: Markdown, JSON, the HTML page (its CSS and JS are package data under
``assets/``), the plots and the gallery. Each module maps the model of
:mod:`vdcbench.leaderboard.tables` to text or bytes, and none of them decides what is ranked.
"""
