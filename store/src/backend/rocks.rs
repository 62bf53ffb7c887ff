//! The RocksDB [`Backend`]: one column family per keyspace, every batch one atomic `WriteBatch`.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType,
    DBRawIteratorWithThreadMode, Options, WriteBatch, WriteOptions, DB,
};

use super::{Backend, Batch, BatchOp, Cursor, RocksOptions, Space};
use crate::error::BackendError;

#[derive(Debug)]
pub struct RocksBackend {
    db: DB,
}

impl RocksBackend {
    pub fn open(path: &Path, opts: &RocksOptions) -> Result<Self, BackendError> {
        let cache = Cache::new_lru_cache(opts.block_cache_bytes);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_bytes_per_sync(1 << 20);
        // Keep total WAL bounded so that reopening after a crash replays little.
        db_opts.set_max_total_wal_size(256 << 20);
        let cfs = Space::ALL.iter().map(|space| {
            let mut cf = Options::default();
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
            cf.set_block_based_table_factory(&table);
            cf.set_write_buffer_size(opts.write_buffer_bytes);
            cf.set_compression_type(DBCompressionType::Lz4);
            cf.set_bottommost_compression_type(DBCompressionType::Zstd);
            cf.set_level_compaction_dynamic_level_bytes(true);
            ColumnFamilyDescriptor::new(space.name(), cf)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        Ok(Self { db })
    }

    fn cf(&self, space: Space) -> &rocksdb::ColumnFamily {
        // Every column family is created by `open`, so the handle always exists.
        self.db
            .cf_handle(space.name())
            .expect("column family created at open")
    }
}

/// A RocksDB raw iterator; it reads from the implicit snapshot taken when it was created.
pub struct RocksCursor<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
}

impl std::fmt::Debug for RocksCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksCursor")
            .field("valid", &self.it.valid())
            .finish()
    }
}

impl Cursor for RocksCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.it.seek(key);
    }
    fn next(&mut self) {
        self.it.next();
    }
    fn valid(&self) -> bool {
        self.it.valid()
    }
    fn key(&self) -> &[u8] {
        self.it.key().unwrap_or_default()
    }
    fn value(&self) -> &[u8] {
        self.it.value().unwrap_or_default()
    }
    fn status(&self) -> Result<(), BackendError> {
        self.it.status().map_err(BackendError::from)
    }
}

impl Backend for RocksBackend {
    type Cursor<'a> = RocksCursor<'a>;

    fn cursor(&self, space: Space) -> RocksCursor<'_> {
        RocksCursor {
            it: self.db.raw_iterator_cf(self.cf(space)),
        }
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.db.get_cf(self.cf(space), key)?)
    }

    fn write(&self, batch: Batch, sync: bool) -> Result<(), BackendError> {
        let mut wb = WriteBatch::default();
        for op in &batch.ops {
            match op {
                BatchOp::Put { space, key, value } => wb.put_cf(self.cf(*space), key, value),
                BatchOp::Delete { space, key } => wb.delete_cf(self.cf(*space), key),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(wb, &wo)?;
        Ok(())
    }

    fn size(&self) -> u64 {
        Space::ALL
            .iter()
            .map(|space| {
                let cf = self.cf(*space);
                let sst = self
                    .db
                    .property_int_value_cf(cf, "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten();
                let mem = self
                    .db
                    .property_int_value_cf(cf, "rocksdb.size-all-mem-tables")
                    .ok()
                    .flatten();
                sst.unwrap_or(0) + mem.unwrap_or(0)
            })
            .sum()
    }

    fn reclaim(&self, space: Space, from: &[u8], to: &[u8]) -> Result<(), BackendError> {
        self.db
            .compact_range_cf(self.cf(space), Some(from), Some(to));
        Ok(())
    }

    fn checkpoint(&self, dir: &Path) -> Result<(), BackendError> {
        // Hard links to the immutable SST files plus a copy of the live WAL: cheap, and exactly
        // the state of one moment.
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }
}
