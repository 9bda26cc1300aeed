! The backend argument of the Fortran examples (process, persistent, thread or serial; process by
! default), shared as c-examples/backend_arg.h is by the C examples.
module backend_arg
  use, intrinsic :: iso_fortran_env, only: error_unit
  use sharedmem
  implicit none
  private
  public :: backend_from_args, backend_name
contains
  !> The backend named by the first command-line argument; stops with a usage line otherwise.
  integer(c_int) function backend_from_args(program) result(backend)
    character(len=*), intent(in) :: program
    character(len=16) :: arg
    arg = "process"
    if (command_argument_count() >= 1) call get_command_argument(1, arg)
    select case (trim(arg))
    case ("process")
      backend = SM_BACKEND_PROCESS
    case ("persistent")
      backend = SM_BACKEND_PERSISTENT
    case ("thread")
      backend = SM_BACKEND_THREAD
    case ("serial")
      backend = SM_BACKEND_SERIAL
    case default
      write (error_unit, '(a)') "usage: " // program // " [process|persistent|thread|serial]"
      error stop 2
    end select
  end function backend_from_args

  !> "process", "persistent", "thread" or "serial".
  function backend_name(backend) result(name)
    integer(c_int), intent(in) :: backend
    character(len=:), allocatable :: name
    select case (backend)
    case (SM_BACKEND_PERSISTENT)
      name = "persistent"
    case (SM_BACKEND_THREAD)
      name = "thread"
    case (SM_BACKEND_SERIAL)
      name = "serial"
    case default
      name = "process"
    end select
  end function backend_name
end module backend_arg
