"""A local S3 for development: moto's S3 server on 127.0.0.1, with the results bucket made.

    make s3                                   # port 9000, bucket sam-results
    .venv/bin/python scripts/local_s3.py --port 9100 --bucket my-results

It prints the settings that point the API and the workers at it, and runs until
Ctrl-C. moto keeps every object in memory: stopping it loses every result folder and
every queued job's image (a job queued then fails with STAGED_IMAGE_UNUSABLE). It is
for development and tests; for results that must outlive the process, use a real
store (MinIO, Ceph, R2, AWS S3).
"""

import argparse
import signal
import threading

import boto3
from moto.server import ThreadedMotoServer

# moto accepts any credentials; these are the ones the printed settings name.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000, help="port on 127.0.0.1 (default 9000)")
    parser.add_argument("--bucket", default="sam-results",
                        help="bucket to create (default sam-results)")
    args = parser.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{args.port}"
    boto3.client("s3", endpoint_url=endpoint, region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
                 aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                 ).create_bucket(Bucket=args.bucket)
    settings = {"RESULTS_DIR": f"s3://{args.bucket}/dev", "AWS_ENDPOINT_URL": endpoint,
                **CREDENTIALS}
    print(f"local S3 (moto, in memory) on {endpoint}, bucket {args.bucket}; "
          "for the API and every worker:")
    print("export " + " ".join(f"{name}={value}" for name, value in settings.items()), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
