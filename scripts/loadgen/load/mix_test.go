package load

import (
	"math"
	"math/rand/v2"
	"testing"
)

func shopperWith(lines map[string]int) *Shopper {
	s := NewShopper("c", "t")
	s.CartID = "cart"
	for _, p := range []string{"123", "456", "789", "101"} {
		if q, ok := lines[p]; ok {
			s.Applied(Action{Op: OpAdd, ProductID: p, Quantity: q}, "", 1)
		}
	}
	return s
}

func TestNext(t *testing.T) {
	catalog := []string{"123", "456", "789"}
	commands := Scenarios["commands"]

	t.Run("OpenWithoutCart", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 100 {
			if a := Next(NewShopper("c", "t"), commands, catalog, rng); a.Op != OpOpen {
				t.Fatalf("a customer without a cart does %v, want open", a.Op)
			}
		}
	})
	t.Run("EmptyCartOnlyAddsOrReads", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 1000 {
			a := Next(shopperWith(nil), Scenarios["mix"], catalog, rng)
			if a.Op != OpAdd && a.Op != OpRead {
				t.Fatalf("an empty cart gets %v: only add and read are possible", a.Op)
			}
		}
	})
	t.Run("ArgumentsKeepToTheRules", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		s := shopperWith(map[string]int{"123": 98, "456": 3})
		for range 5000 {
			a := Next(s, commands, catalog, rng)
			switch a.Op {
			case OpAdd:
				if q := s.Lines[a.ProductID] + a.Quantity; a.Quantity < 1 || q > maxLineQuantity {
					t.Fatalf("add %d of %s to %d: over the line limit", a.Quantity, a.ProductID, s.Lines[a.ProductID])
				}
			case OpChange:
				cur, ok := s.Lines[a.ProductID]
				if !ok || a.Quantity == cur || a.Quantity < 1 || a.Quantity > maxSetQuantity {
					t.Fatalf("change %s from %d to %d (in cart: %v)", a.ProductID, cur, a.Quantity, ok)
				}
			case OpRemove:
				if _, ok := s.Lines[a.ProductID]; !ok {
					t.Fatalf("remove %s, which is not in the cart", a.ProductID)
				}
			case OpCheckout:
			default:
				t.Fatalf("the commands mix picked %v", a.Op)
			}
		}
	})
	t.Run("FullLineIsNotAddedTo", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		s := shopperWith(map[string]int{"123": 99, "456": 99, "789": 99})
		for range 1000 {
			if a := Next(s, Mix{Add: 1}, catalog, rng); a.Op != OpCheckout {
				t.Fatalf("a cart whose lines are all full gets %+v; only checkout keeps it moving", a)
			}
		}
	})
	t.Run("WeightsAreHonoured", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		m := Mix{Add: 50, Change: 20, Remove: 20, Checkout: 10}
		var counts [numOps]int
		const n = 100_000
		for range n {
			// Three lines far from the limits: every op is possible.
			counts[Next(shopperWith(map[string]int{"123": 2, "456": 2, "789": 2}), m, []string{"101"}, rng).Op]++
		}
		for op, want := range map[Op]float64{OpAdd: .5, OpChange: .2, OpRemove: .2, OpCheckout: .1} {
			got := float64(counts[op]) / n
			// 5 standard deviations of a binomial proportion: a seeded run
			// never fails by chance, a wrong draw always does.
			if tol := 5 * math.Sqrt(want*(1-want)/n); math.Abs(got-want) > tol {
				t.Errorf("%v picked %.3f of the time, want %.3f ± %.3f", op, got, want, tol)
			}
		}
	})
	t.Run("SeedReproduces", func(t *testing.T) {
		run := func() []Action {
			rng := rand.New(rand.NewPCG(9, 9))
			s := NewShopper("c", "t")
			var acts []Action
			for range 200 {
				a := Next(s, commands, catalog, rng)
				acts = append(acts, a)
				s.Applied(a, "cart", s.Version+1)
			}
			return acts
		}
		a, b := run(), run()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("step %d: %+v then %+v with the same seed", i, a[i], b[i])
			}
		}
	})
}

func TestMixValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mix Mix
		ok  bool
	}{
		"OK":                     {Scenarios["mix"], true},
		"OKReadsOnly":            {Mix{Read: 1}, true},
		"ErrAllZero":             {Mix{ReadAfterWrite: 1}, false},
		"ErrNegative":            {Mix{Add: 2, Remove: -1}, false},
		"ErrChangesWithoutAdd":   {Mix{Change: 1, Read: 1}, false},
		"ErrProbabilityOverOne":  {Mix{Add: 1, ReadAfterWrite: 1.5}, false},
		"ErrProbabilityNegative": {Mix{Add: 1, ReadAfterWrite: -0.1}, false},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tc.mix.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate(%+v) = %v", tc.mix, err)
			}
		})
	}
	for name, mix := range Scenarios {
		if err := mix.Validate(); err != nil {
			t.Errorf("scenario %s: %v", name, err)
		}
	}
}
