"""`matthan-agent demo`: the agent against a simulated village cluster, with a local broker and the station's view.

Modules: `scenario` (the village: cameras, scenes), `config` (the agent config it generates), `broker` (its own
Mosquitto), `procs` (child processes that never outlive the demo), `nsthread` (a thread in the agent namespace),
`view` (what the station sees, pure), `station` (the MQTT subscriber), `console` (live table or plain lines),
`runner` (start, watch, stop, summary). Only `agent.cli.demo` imports this package.
"""
