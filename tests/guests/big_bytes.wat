;; A guest returning large results: `bytes(n)` a `list<u8>` of n bytes
;; (byte i is i mod 256), `words(n)` a `list<u32>` of n words, `strings(n)`
;; a `list<string>` of n empty strings (8 bytes each here, a `Val` each in
;; the host), each grown into memory at once. For the amplification tests: the host must hold
;; such results compactly, or refuse them at its per-call bound.
(component
  (core module $M
    (memory (export "memory") 1)
    ;; Result area at 0..8; data from 64 KiB on.
    (func $room (param $bytes i32)
      (local $need i32)
      (local.set $need (i32.sub
        (i32.shr_u (i32.add (local.get $bytes) (i32.const 0x1ffff)) (i32.const 16))
        (memory.size)))
      (if (i32.gt_s (local.get $need) (i32.const 0))
        (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then unreachable)))))
    (func (export "bytes") (param $n i32) (result i32)
      (local $i i32)
      (call $room (local.get $n))
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (i32.const 0x10000) (local.get $i)) (local.get $i))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (i32.store (i32.const 0) (i32.const 0x10000))
      (i32.store (i32.const 4) (local.get $n))
      (i32.const 0))
    (func (export "words") (param $n i32) (result i32)
      (call $room (i32.mul (local.get $n) (i32.const 4)))
      (i32.store (i32.const 0) (i32.const 0x10000))
      (i32.store (i32.const 4) (local.get $n))
      (i32.const 0))
    (func (export "strings") (param $n i32) (result i32)
      (call $room (i32.mul (local.get $n) (i32.const 8)))
      (i32.store (i32.const 0) (i32.const 0x10000))
      (i32.store (i32.const 4) (local.get $n))
      (i32.const 0))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 8)))
  (core instance $m (instantiate $M))
  (func (export "bytes") (param "n" u32) (result (list u8))
    (canon lift (core func $m "bytes") (memory (core memory $m "memory"))))
  (func (export "words") (param "n" u32) (result (list u32))
    (canon lift (core func $m "words") (memory (core memory $m "memory"))))
  (func (export "strings") (param "n" u32) (result (list string))
    (canon lift (core func $m "strings") (memory (core memory $m "memory")) (realloc (core func $m "realloc")))))
