"""``ddb bench``: YCSB's core workloads and plain put / get / query against any DynamoDB-API endpoint.

keys       YCSB's key choosers (zipfian, scrambled zipfian, uniform, latest) and the insert counter
workloads  the workload definitions and the chooser of operations and records
bodies     request bodies from templates
sigv4      AWS SigV4 signing, cached per day and per second
client     the light asyncio HTTP client, and boto3 for comparison
loader     the benchmark's table: create, wait until ACTIVE, BatchWriteItem load
runner     the measured phase: clients, bounds, latency recording
histogram  HDR histograms and their summary
report     JSON and tables, and the comparison across targets
peers      moto, dynalite and DynamoDB Local: start on a free port, stop by PID
trivial    an HTTP server answering {}: the client's own ceiling
main       one run, and --compare; command: the click command
"""
