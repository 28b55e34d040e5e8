//! The libvirt calls the `virt` crate lacks or gets wrong, wrapped once each: the only
//! `unsafe` in the agent.

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulonglong};
use std::ptr;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;
use virt::nodedev::NodeDevice;
use virt::sys;

/// What `virDomainGetJobStats` says of a job (the numbers plinth reads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    /// `VIR_DOMAIN_JOB_*`: none, bounded, unbounded, completed, failed, cancelled.
    pub kind: i32,
    pub time_elapsed_ms: Option<u64>,
    pub data_total: Option<u64>,
    pub data_processed: Option<u64>,
    pub data_remaining: Option<u64>,
}

/// `virDomainGetJobStats`. The `virt` crate's wrapper makes a `Vec` of the parameter array
/// libvirt allocates, which is NULL when there are none (undefined behaviour: a debug build
/// aborts the process), and frees it without its strings.
#[allow(unsafe_code)]
pub fn job_stats(dom: &Domain, flags: u32) -> Result<JobStats, Error> {
    let mut kind: c_int = 0;
    let mut params: sys::virTypedParameterPtr = ptr::null_mut();
    let mut nparams: c_int = 0;
    // SAFETY: `dom` is borrowed, so its handle stays referenced and valid for the call, and
    // the out-pointers point at live locals. On success libvirt hands over `params`: NULL,
    // or an array of `nparams` it allocated. It is only read through
    // virTypedParamsGetULLong (given the array with its length, and a live `value`), never
    // when NULL, and freed exactly once with virTypedParamsFree, as libvirt documents.
    // Failure is -1 with the calling thread's libvirt error set, which `last_error` reads on
    // this same thread.
    unsafe {
        if sys::virDomainGetJobStats(dom.as_ptr(), &mut kind, &mut params, &mut nparams, flags) < 0
        {
            return Err(Error::last_error());
        }
        let get = |name: &CStr| -> Option<u64> {
            let mut value: c_ulonglong = 0;
            let found = !params.is_null()
                && sys::virTypedParamsGetULLong(params, nparams, name.as_ptr(), &mut value) == 1;
            found.then_some(value)
        };
        let stats = JobStats {
            kind,
            time_elapsed_ms: get(sys::VIR_DOMAIN_JOB_TIME_ELAPSED),
            data_total: get(sys::VIR_DOMAIN_JOB_DATA_TOTAL),
            data_processed: get(sys::VIR_DOMAIN_JOB_DATA_PROCESSED),
            data_remaining: get(sys::VIR_DOMAIN_JOB_DATA_REMAINING),
        };
        sys::virTypedParamsFree(params, nparams);
        Ok(stats)
    }
}

/// `virDomainAbortJob`, which the `virt` crate does not wrap.
#[allow(unsafe_code)]
pub fn abort_job(dom: &Domain) -> Result<(), Error> {
    // SAFETY: `dom` is borrowed for the whole call, so its handle stays referenced and valid;
    // virDomainAbortJob only reads it, and reports failure as -1 with the calling thread's
    // libvirt error set, which `last_error` reads on this same thread.
    let ret = unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
    if ret < 0 {
        Err(Error::last_error())
    } else {
        Ok(())
    }
}

/// `virNodeDeviceDefineXML` (libvirt 7.3+): a persistent node device, such as an mdev that
/// libvirt (through mdevctl) brings back at boot. The `virt` crate exposes it only raw.
#[allow(unsafe_code)]
pub fn define_node_device(conn: &Connect, xml: &CStr) -> Result<NodeDevice, Error> {
    // SAFETY: `conn` is borrowed for the call, so its handle stays valid; `xml` is a
    // NUL-terminated string that outlives the call and libvirt only reads it. On success
    // libvirt returns a new reference to the device, which `NodeDevice::from_ptr` takes
    // over (and frees once when dropped); on failure it returns NULL with the calling
    // thread's libvirt error set, which `last_error` reads on this same thread.
    let dev = unsafe { sys::virNodeDeviceDefineXML(conn.as_ptr(), xml.as_ptr(), 0) };
    if dev.is_null() {
        return Err(Error::last_error());
    }
    // SAFETY: `dev` is the non-NULL reference libvirt just handed over, owned by no one else.
    Ok(unsafe { NodeDevice::from_ptr(dev) })
}

/// `virNodeDeviceSetAutostart`: start the defined device when the host boots.
#[allow(unsafe_code)]
pub fn set_node_device_autostart(dev: &NodeDevice, on: bool) -> Result<(), Error> {
    // SAFETY: `dev` is borrowed for the whole call, so its handle stays referenced and
    // valid; libvirt reports failure as -1 with the thread's error set.
    let ret = unsafe { sys::virNodeDeviceSetAutostart(dev.as_ptr(), c_int::from(on)) };
    if ret < 0 {
        Err(Error::last_error())
    } else {
        Ok(())
    }
}

/// `virNodeDeviceUndefine`: forget a persistent node device's definition.
#[allow(unsafe_code)]
pub fn undefine_node_device(dev: &NodeDevice) -> Result<(), Error> {
    // SAFETY: as for `set_node_device_autostart`: a borrowed, valid handle; -1 and the
    // thread's error on failure.
    let ret = unsafe { sys::virNodeDeviceUndefine(dev.as_ptr(), 0) };
    if ret < 0 {
        Err(Error::last_error())
    } else {
        Ok(())
    }
}

/// A typed parameter's value, copied out of libvirt's memory.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    UInt(u64),
    Double(f64),
    Bool(bool),
    Text(String),
}

impl ParamValue {
    /// The value as a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ParamValue::Int(v) => Some(v as f64),
            ParamValue::UInt(v) => Some(v as f64),
            ParamValue::Double(v) => Some(v),
            ParamValue::Bool(_) | ParamValue::Text(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// One domain's record of `virConnectGetAllDomainStats`, owned by Rust.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRecord {
    pub name: String,
    pub uuid: String,
    /// `state.state`, `cpu.time`, `block.0.rd.bytes`, ... as libvirt names them.
    pub params: Vec<(String, ParamValue)>,
}

/// Frees the record list libvirt allocated, whatever happens while it is read.
struct RecordList(*mut sys::virDomainStatsRecordPtr);

impl Drop for RecordList {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the pointer is what virConnectGetAllDomainStats returned (a NULL-terminated
        // array it allocated, or NULL, which virDomainStatsRecordListFree accepts); this is
        // the only place it is freed, once, and nothing reads it afterwards. The list frees
        // each record's parameters and drops its reference to each domain.
        unsafe { sys::virDomainStatsRecordListFree(self.0) }
    }
}

/// `virConnectGetAllDomainStats`: one call for the stats of every domain the flags select.
/// The `virt` crate's wrapper hands back raw record pointers and frees only the array, leaking
/// every record with its parameters and domain reference; this copies what it needs out and
/// frees the whole list with `virDomainStatsRecordListFree`.
#[allow(unsafe_code)]
pub fn all_domain_stats(
    conn: &Connect,
    stats: c_uint,
    flags: c_uint,
) -> Result<Vec<StatsRecord>, Error> {
    let mut list: *mut sys::virDomainStatsRecordPtr = ptr::null_mut();
    // SAFETY: `conn` is borrowed for the call, so its handle stays referenced and valid, and
    // `list` is a live local libvirt writes the array's address into. Failure is -1 with the
    // calling thread's libvirt error set, which `last_error` reads on this same thread.
    let n = unsafe { sys::virConnectGetAllDomainStats(conn.as_ptr(), stats, &mut list, flags) };
    if n < 0 {
        return Err(Error::last_error());
    }
    let list = RecordList(list);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        // SAFETY: on success the array holds `n` non-NULL record pointers (then a NULL), and
        // `list` keeps it alive until this function returns; `i < n`.
        let record = unsafe { *list.0.add(i) };
        if record.is_null() {
            break;
        }
        // SAFETY: `record` points at a record of the live list (see above).
        out.push(unsafe { copy_record(&*record) });
    }
    Ok(out)
}

/// Copies a record out of libvirt's memory.
///
/// # Safety
/// `record` must belong to a list that is still allocated: its `dom` a valid domain handle,
/// its `params` an array of `nparams` initialised parameters (or NULL with 0).
#[allow(unsafe_code)]
unsafe fn copy_record(record: &sys::virDomainStatsRecord) -> StatsRecord {
    // SAFETY (whole body): guaranteed by the caller, as above. virDomainGetName returns a
    // string owned by the domain object, read here before the list (and its reference) goes;
    // virDomainGetUUIDString writes at most VIR_UUID_STRING_BUFLEN bytes, NUL included, into
    // a buffer of that size. Each parameter's `field` is a NUL-terminated array of 80 chars,
    // and its `type_` says which member of the value union is initialised; a string
    // parameter's pointer is NUL-terminated text or NULL.
    unsafe {
        let name = c_text(sys::virDomainGetName(record.dom));
        let mut buf = [0 as c_char; sys::VIR_UUID_STRING_BUFLEN as usize];
        let uuid = if sys::virDomainGetUUIDString(record.dom, buf.as_mut_ptr()) == 0 {
            c_text(buf.as_ptr())
        } else {
            String::new()
        };
        let count = if record.params.is_null() {
            0
        } else {
            usize::try_from(record.nparams).unwrap_or(0)
        };
        let mut params = Vec::with_capacity(count);
        for i in 0..count {
            let p = &*record.params.add(i);
            let key = c_text(p.field.as_ptr());
            let value = match p.type_ as c_uint {
                sys::VIR_TYPED_PARAM_INT => ParamValue::Int(i64::from(p.value.i)),
                sys::VIR_TYPED_PARAM_UINT => ParamValue::UInt(u64::from(p.value.ui)),
                sys::VIR_TYPED_PARAM_LLONG => ParamValue::Int(p.value.l),
                sys::VIR_TYPED_PARAM_ULLONG => ParamValue::UInt(p.value.ul),
                sys::VIR_TYPED_PARAM_DOUBLE => ParamValue::Double(p.value.d),
                sys::VIR_TYPED_PARAM_BOOLEAN => ParamValue::Bool(p.value.b != 0),
                sys::VIR_TYPED_PARAM_STRING => ParamValue::Text(c_text(p.value.s)),
                _ => continue,
            };
            params.push((key, value));
        }
        StatsRecord { name, uuid, params }
    }
}

/// Owned text from a C string; empty for NULL.
///
/// # Safety
/// `p` is NULL or points at a NUL-terminated string that stays valid for the call.
#[allow(unsafe_code)]
unsafe fn c_text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}
