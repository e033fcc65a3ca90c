"""The `sluice` command: the dev launcher and the admin CLI over the admin API.

`app` builds the typer app; `connection` resolves where to connect and holds the API
client (`api(ctx)`); `output` prints JSON or rich tables (`emit`). Commands raise
`ApiError`/`Unreachable` freely: `app.main` prints them as readable errors.
The admin commands import neither litestar nor the server modules.
"""
