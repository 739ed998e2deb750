#!/usr/bin/env python3
"""How soon an alarm fires after its breaching datapoint: a 60 s and a 10 s (high-resolution)
alarm, each given one breaching value, polled until ALARM.

    python3 bench/alarm_latency.py path/to/lakebox
"""
import datetime, shutil, time, subprocess, tempfile, boto3, socket, sys
UTC = datetime.timezone.utc
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
d = tempfile.mkdtemp()
p = subprocess.Popen([sys.argv[1], "serve", "--port", str(port), "--data-dir", d, "--log-level", "warn"])
time.sleep(1)
cw = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id="t", aws_secret_access_key="t")
out = []
for res, period in ((60, 60), (1, 10)):
    name = f"lat-{period}"
    cw.put_metric_alarm(AlarmName=name, Namespace="Lat", MetricName=name, Statistic="Maximum", Period=period,
                        EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
                        TreatMissingData="notBreaching")
    now = datetime.datetime.now(UTC)
    cw.put_metric_data(Namespace="Lat", MetricData=[{"MetricName": name, "Value": 10, "Timestamp": now,
                                                     "StorageResolution": res}])
    sent = time.time()
    closes = (int(sent) // period + 1) * period
    while cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"] != "ALARM":
        time.sleep(0.2)
    fired = time.time()
    out.append(f"period {period}s: ALARM {fired - sent:.1f}s after the datapoint, {fired - closes:.1f}s after its period closed")
p.terminate()
p.wait()
shutil.rmtree(d)
print("\n".join(out))
