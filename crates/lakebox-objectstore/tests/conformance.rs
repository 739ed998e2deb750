//! The `object_store` crate's conformance suite, run against a Lakebox bucket.

use std::sync::Arc;

use lakebox_objectstore::LakeObjectStore;
use lakebox_s3::store::{ObjectStore as S3Store, S3Settings};
use object_store::integration;

async fn store(dir: &std::path::Path) -> LakeObjectStore {
    let s3 = S3Store::open(
        dir,
        Arc::new(lakebox_core::clock::SystemClock),
        S3Settings::default(),
    )
    .unwrap();
    let lake = lakebox_s3::lake::lake(Arc::new(s3));
    lake.ensure_bucket("lake", "us-east-1", "000000000000")
        .await
        .unwrap();
    LakeObjectStore::new(lake, "lake")
}

macro_rules! conformance {
    ($($name:ident => |$s:ident| $body:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            let $s = store(dir.path()).await;
            $body.await;
        }
    )*};
}

conformance! {
    put_get_delete_list => |s| integration::put_get_delete_list(&s);
    get_opts => |s| integration::get_opts(&s);
    put_opts => |s| integration::put_opts(&s, true);
    stream_get => |s| integration::stream_get(&s);
    list_uses_directories_correctly => |s| integration::list_uses_directories_correctly(&s);
    list_with_delimiter => |s| integration::list_with_delimiter(&s);
    rename_and_copy => |s| integration::rename_and_copy(&s);
    copy_if_not_exists => |s| integration::copy_if_not_exists(&s);
    copy_rename_nonexistent_object => |s| integration::copy_rename_nonexistent_object(&s);
    multipart_out_of_order => |s| integration::multipart_out_of_order(&s);
    multipart_race_condition => |s| integration::multipart_race_condition(&s, true);
    get_nonexistent_object => |s| async move { integration::get_nonexistent_object(&s, None).await.unwrap_err(); };
}
