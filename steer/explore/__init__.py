"""`steer explore`: the web app (`app`, Starlette) and its caches and computations (`state`).

Imports: anything below, including the study registry (`steer.studies`); nothing imports it but the CLI.
"""
