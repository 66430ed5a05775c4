;; A hostile guest: `flood` creates owned handles of its own resource type
;; in a loop and never drops them, until the handle table refuses one.
(component
  (type $r (resource (rep i32)))
  (core func $new (canon resource.new $r))
  (core module $M
    (import "" "new" (func $new (param i32) (result i32)))
    (func (export "flood") (result i32)
      (local $i i32)
      (loop $l
        (drop (call $new (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l))
      (local.get $i)))
  (core instance $m (instantiate $M (with "" (instance (export "new" (func $new))))))
  (func (export "flood") (result u32) (canon lift (core func $m "flood"))))
