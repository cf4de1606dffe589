"""`ddb chaos`: drive a workload through the DynamoDB API, inject faults on a seeded schedule, heal, and
check the recorded history (linearizability per key, no acknowledged write lost). See docs/chaos.md."""
