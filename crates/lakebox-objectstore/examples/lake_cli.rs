//! Reads and writes a stopped Lakebox's S3 data directory through `object_store`, as
//! DataFusion will: `lake_cli <data-dir> <bucket> ls [prefix] | cat <key> | put <key> <file>`.
//! The end-to-end tests use it to check that what boto3 wrote is what `object_store` reads,
//! and the other way round.

use std::sync::Arc;

use futures::TryStreamExt;
use lakebox_objectstore::LakeObjectStore;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, bucket, command, rest @ ..] = args.as_slice() else {
        return Err("usage: lake_cli <data-dir> <bucket> ls [prefix] | cat <key> | put <key> <file>".into());
    };
    let s3 = lakebox_s3::store::ObjectStore::open(
        &std::path::Path::new(dir).join("s3"),
        Arc::new(lakebox_core::clock::SystemClock),
        Default::default(),
    )?;
    let store = LakeObjectStore::new(lakebox_s3::lake::lake(Arc::new(s3)), bucket.as_str());
    match (command.as_str(), rest) {
        ("ls", prefix) => {
            let prefix = prefix.first().map(|p| Path::from(p.as_str()));
            let mut all: Vec<_> = store.list(prefix.as_ref()).try_collect().await?;
            all.sort_by(|a, b| a.location.cmp(&b.location));
            for m in all {
                println!("{}\t{}\t{}", m.location, m.size, m.e_tag.unwrap_or_default());
            }
        }
        ("cat", [key]) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let mut stream = store.get(&Path::from(key.as_str())).await?.into_stream();
            while let Some(chunk) = stream.try_next().await? {
                out.write_all(&chunk)?;
            }
        }
        ("put", [key, file]) => {
            let data = std::fs::read(file)?;
            let r = store.put(&Path::from(key.as_str()), data.into()).await?;
            println!("{}", r.e_tag.unwrap_or_default());
        }
        _ => return Err(format!("unknown command {command}").into()),
    }
    Ok(())
}
