package dashboard

//go:generate bash fetch-uplot.sh
