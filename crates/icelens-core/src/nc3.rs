//! Writing netCDF-3 (CDF-2) files into memory with the `netcdf3` crate.
//!
//! netCDF-3 is the one netCDF flavour with a maintained pure-Rust writer; every netCDF reader
//! (xarray, the C library, `netcdf-reader`) opens it. Its lack of an unsigned byte type is
//! handled the netCDF way: `NC_BYTE` plus `_Unsigned = "true"`.

use std::cell::RefCell;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::rc::Rc;

use netcdf3::{DataSet, FileWriter, Version};

/// A `Write + Seek` target whose bytes stay reachable after the writer that owns it is gone.
#[derive(Clone, Default)]
struct SharedBuffer(Rc<RefCell<Cursor<Vec<u8>>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for SharedBuffer {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.borrow_mut().seek(pos)
    }
}

/// Data of one variable to write.
pub enum Data<'a> {
    I8(&'a [i8]),
    I32(&'a [i32]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// Writes a defined data set and its variables' data as CDF-2 bytes.
pub fn write_cdf2(
    data_set: &DataSet,
    name: &str,
    variables: &[(&str, Data<'_>)],
) -> Result<Vec<u8>, String> {
    let buffer = SharedBuffer::default();
    let mut writer = FileWriter::open_seek_write(name, Box::new(buffer.clone()))
        .map_err(|e| format!("{name}: {e:?}"))?;
    writer
        .set_def(data_set, Version::Offset64Bit, 0)
        .map_err(|e| format!("{name}: {e:?}"))?;
    for (var, data) in variables {
        let r = match data {
            Data::I8(d) => writer.write_var_i8(var, d),
            Data::I32(d) => writer.write_var_i32(var, d),
            Data::F32(d) => writer.write_var_f32(var, d),
            Data::F64(d) => writer.write_var_f64(var, d),
        };
        r.map_err(|e| format!("{name}: variable {var}: {e:?}"))?;
    }
    writer.close().map_err(|e| format!("{name}: {e:?}"))?;
    // The writer is gone, so this is normally the last handle and the bytes move out uncopied.
    Ok(match Rc::try_unwrap(buffer.0) {
        Ok(cell) => cell.into_inner().into_inner(),
        Err(shared) => shared.borrow().get_ref().clone(),
    })
}
