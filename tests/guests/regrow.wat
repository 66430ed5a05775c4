;; A guest whose memory grows, for the reset tests: a recycled instance's
;; memory must be as short as a fresh one's, to the guest and to the host.
;; `grow(n)` is memory.grow, `size()` memory.size; `poke`/`peek` write and
;; read a word anywhere; `poke-then-tell` writes, then calls the host's
;; `tell`; `poke-then-trap` writes, then traps; `text(at)` returns the
;; 4-byte string at `at` (lifted by the host).
(component
  (import "tell" (func $tell (param "x" u32)))
  (core module $Mem (memory (export "mem") 1) (global (export "g") (mut i32) (i32.const 0)))
  (core instance $mem (instantiate $Mem))
  (core func $tell (canon lower (func $tell)))
  (core module $M
    (import "host" "tell" (func $tell (param i32)))
    (import "mem" "mem" (memory 1))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "size") (result i32) (memory.size))
    (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
    (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
    (func (export "poke-then-tell") (param i32 i32)
      (i32.store (local.get 0) (local.get 1))
      (call $tell (local.get 1)))
    (func (export "poke-then-trap") (param i32 i32)
      (i32.store (local.get 0) (local.get 1))
      unreachable)
    (func (export "text") (param i32) (result i32)
      (i32.store (i32.const 16) (local.get 0))
      (i32.store (i32.const 20) (i32.const 4))
      (i32.const 16)))
  (core instance $m (instantiate $M
    (with "host" (instance (export "tell" (func $tell))))
    (with "mem" (instance $mem))))
  (func (export "grow") (param "n" u32) (result s32) (canon lift (core func $m "grow")))
  (func (export "size") (result u32) (canon lift (core func $m "size")))
  (func (export "poke") (param "at" u32) (param "x" u32) (canon lift (core func $m "poke")))
  (func (export "peek") (param "at" u32) (result u32) (canon lift (core func $m "peek")))
  (func (export "poke-then-tell") (param "at" u32) (param "x" u32) (canon lift (core func $m "poke-then-tell")))
  (func (export "poke-then-trap") (param "at" u32) (param "x" u32) (canon lift (core func $m "poke-then-trap")))
  (func (export "text") (param "at" u32) (result string)
    (canon lift (core func $m "text") (memory (core memory $mem "mem")) string-encoding=utf8)))
