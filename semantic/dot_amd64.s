//go:build !purego

#include "textflag.h"

// func dotFMA(q, v *float32, dim, count int, out *float32)
//
// For each of the count vectors of dim floats laid end to end at v, out[i] is its dot product
// with the dim floats at q. Per vector: blocks of 32 floats go to four accumulators, then
// blocks of 8 to the first; the accumulators are summed, and the last dim%8 products are
// added one by one.
TEXT ·dotFMA(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), R8
	MOVQ v+8(FP), DI
	MOVQ dim+16(FP), R9
	MOVQ count+24(FP), R10
	MOVQ out+32(FP), R11

vector:
	CMPQ R10, $0
	JE   end
	MOVQ R8, SI
	MOVQ R9, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop32:
	CMPQ CX, $32
	JL   loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  loop32

loop8:
	CMPQ CX, $8
	JL   reduce
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop8

reduce:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0

loop1:
	CMPQ CX, $0
	JE   store
	VMOVSS      (SI), X1
	VFMADD231SS (DI), X1, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  loop1

store:
	VMOVSS X0, (R11)
	ADDQ   $4, R11
	DECQ   R10
	JMP    vector

end:
	VZEROUPPER
	RET

// func addScaledAVX2(v *float32, q *int8, n int, s float32)
//
// v[j] += s * float32(q[j]) for j < n: eight lanes at a time (sign-extend, convert, multiply,
// add), then one by one. A multiply then an add, never fused: each v[j] is the scalar loop's,
// bit for bit.
TEXT ·addScaledAVX2(SB), NOSPLIT, $0-28
	MOVQ         v+0(FP), DI
	MOVQ         q+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS s+24(FP), Y2

add8:
	CMPQ      CX, $8
	JL        add1
	VPMOVSXBD (SI), Y0
	VCVTDQ2PS Y0, Y0
	VMULPS    Y2, Y0, Y0
	VADDPS    (DI), Y0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $8, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       add8

add1:
	CMPQ       CX, $0
	JE         added
	MOVBLSX    (SI), AX
	VCVTSI2SSL AX, X0, X0
	VMULSS     X2, X0, X0
	VADDSS     (DI), X0, X0
	VMOVSS     X0, (DI)
	INCQ       SI
	ADDQ       $4, DI
	DECQ       CX
	JMP        add1

added:
	VZEROUPPER
	RET
