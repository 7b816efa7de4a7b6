"""The environment: procgen maze levels, the state codec, edits, rendering of observations, maze features.

Modules: `state` (procgen's serialized maze state), `layout` (the `Maze` value: grid, mouse, cheese, edits,
facing, BFS, decision square), `env` (procgen levels for seeds and observations of edited states),
`features` (maze features per maze and mouse square).

Imports: only `steer.errors` and `steer.io` from outside this folder; nothing here knows about the network.
"""
