//! Bridges the crate's RNG traits (rand 0.9, `rand_core` 0.9) to the
//! `rand_core` 0.10 traits the RustCrypto der-0.8 generation expects
//! (rsa 0.10, p256/p384 0.14, ed25519-dalek 3).
//!
//! Callers keep passing `&mut impl rand::CryptoRng` (e.g. a seeded ChaCha in
//! tests); key generation inside `pki` wraps it in [`Bridge`].

use std::convert::Infallible;

use rsa::rand_core::{TryCryptoRng, TryRng};

/// A rand 0.9 cryptographic RNG seen through the rand_core 0.10 traits.
pub(crate) struct Bridge<'a, R: ?Sized>(pub &'a mut R);

impl<R: rand::RngCore + ?Sized> TryRng for Bridge<'_, R> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

/// Only cryptographic RNGs may be bridged as cryptographic.
impl<R: rand::CryptoRng + ?Sized> TryCryptoRng for Bridge<'_, R> {}
