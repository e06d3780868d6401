"""What ``core init`` and ``core generate plugin`` write: the quickstart project
(``quickstart/``) and the plugin templates (``templates/``), package data shipped in the wheel;
:mod:`~core.scaffold.plugin` renders the plugin."""
