//! `serde` for the types whose text form is their meaning: a [`Reply`] is
//! `[code, text]` (the text's lines joined by LF; the enhanced status is read
//! back from it), an [`Address`] and a [`Parameter`] are strings, checked again
//! when deserialised (so no CR, LF or NUL gets in that way either).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::command::{Address, Parameter};
use crate::reply::Reply;

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.code(), self.text()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reply, D::Error> {
        let (code, text) = <(u16, String)>::deserialize(d)?;
        if !(200..600).contains(&code) {
            return Err(D::Error::custom(format!("reply code {code} out of range")));
        }
        Ok(Reply::new(
            code,
            text.split('\n').map(str::to_owned).collect(),
        ))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(Address::null());
        }
        Address::new(s).map_err(D::Error::custom)
    }
}

impl Serialize for Parameter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Parameter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Parameter, D::Error> {
        Parameter::parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}
