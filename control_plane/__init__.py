"""The control plane: tables, partitions and nodes, replicated by the "cp" Paxos group on cp-a/b/c.

- ``metadata.py``: the replicated state machine (commands, the partition map, snapshots).
- ``machine.py``: that state machine as the replication driver runs it, kept durable in the node's store.
- ``tables.py``: table operations at the leader (DynamoDB's rules and errors, commands, answers).
- ``view.py``: what storage-node heartbeats tell the leader (liveness, partition leaders, item counts).
- ``app.py``: the process (``python -m control_plane``): the group, the CONTROL service, leader duties.
"""
